package arrowio

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Key names one cached partition: a dataset (for example the data layer's
// source) and the partition index within it.
type Key struct {
	Dataset   string
	Partition int
}

func (k Key) String() string { return fmt.Sprintf("%s#%d", k.Dataset, k.Partition) }

// Cache keeps decoded partitions in memory across training rounds, so a
// round whose task stays on the same executor resends no data. It is safe
// for concurrent use; each goexec server owns its own Cache.
type Cache struct {
	mu      sync.Mutex
	entries map[Key]*Dataset
	loading map[Key]chan struct{}
}

// NewCache returns an empty cache.
func NewCache() *Cache {
	return &Cache{entries: map[Key]*Dataset{}, loading: map[Key]chan struct{}{}}
}

// Get returns the partition with a reference for the caller to Release.
func (c *Cache) Get(k Key) (*Dataset, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.entries[k]
	if ok {
		d.Retain()
	}
	return d, ok
}

// Put stores d under k, taking over the caller's reference, and releases
// the partition it replaces.
func (c *Cache) Put(k Key, d *Dataset) {
	c.mu.Lock()
	old := c.entries[k]
	c.entries[k] = d
	c.mu.Unlock()
	if old != nil && old != d {
		old.Release()
	}
}

// GetOrLoad returns the cached partition for k, or calls load to build it
// and caches the result. Concurrent callers for one key wait for a single
// load. The returned dataset carries a reference for the caller; loaded
// reports whether this call ran load.
func (c *Cache) GetOrLoad(ctx context.Context, k Key, load func(context.Context) (*Dataset, error)) (d *Dataset, loaded bool, err error) {
	for {
		c.mu.Lock()
		if d, ok := c.entries[k]; ok {
			d.Retain()
			c.mu.Unlock()
			return d, false, nil
		}
		wait, busy := c.loading[k]
		if !busy {
			done := make(chan struct{})
			c.loading[k] = done
			c.mu.Unlock()
			return c.load(ctx, k, done, load)
		}
		c.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// load runs load for k and publishes the result; waiters are woken even
// if load panics.
func (c *Cache) load(ctx context.Context, k Key, done chan struct{}, load func(context.Context) (*Dataset, error)) (*Dataset, bool, error) {
	var d *Dataset
	err := fmt.Errorf("partition %s: load did not return", k)
	defer func() {
		c.mu.Lock()
		delete(c.loading, k)
		if err == nil {
			if old := c.entries[k]; old != nil {
				old.Release()
			}
			c.entries[k] = d
			d.Retain()
		}
		c.mu.Unlock()
		close(done)
	}()
	d, err = load(ctx)
	if err == nil && d == nil {
		err = errors.New("load returned no dataset")
	}
	if err != nil {
		return nil, true, fmt.Errorf("partition %s: %w", k, err)
	}
	return d, true, nil
}

// Drop removes and releases the partition under k, reporting whether it
// was cached.
func (c *Cache) Drop(k Key) bool {
	c.mu.Lock()
	d, ok := c.entries[k]
	delete(c.entries, k)
	c.mu.Unlock()
	if ok {
		d.Release()
	}
	return ok
}

// Entry describes one cached partition.
type Entry struct {
	Key   Key
	Rows  int
	Bytes int64
}

// Entries lists the cached partitions, sorted by key, for logging
// partition sizes.
func (c *Cache) Entries() []Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Entry, 0, len(c.entries))
	for k, d := range c.entries {
		out = append(out, Entry{Key: k, Rows: d.Len(), Bytes: d.Bytes()})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Key.Dataset != out[j].Key.Dataset {
			return out[i].Key.Dataset < out[j].Key.Dataset
		}
		return out[i].Key.Partition < out[j].Key.Partition
	})
	return out
}

// Close releases every cached partition; datasets still referenced by
// samplers stay alive until those release them.
func (c *Cache) Close() {
	c.mu.Lock()
	entries := c.entries
	c.entries = map[Key]*Dataset{}
	c.mu.Unlock()
	for _, d := range entries {
		d.Release()
	}
}
