package network

import "fmt"

// FlatDiffs lays the learnable parameters' gradients out in one contiguous
// buffer, in LearnableParams order, followed by extra spare elements, and
// returns the whole buffer: an all-reduce (or an update) then works on it
// in place instead of copying every gradient in and out. The gradients'
// values are kept; params that share an owner's storage follow it. Calling
// it again lays the gradients out anew.
func (n *Net[T]) FlatDiffs(extra int) ([]T, error) {
	if extra < 0 {
		return nil, fmt.Errorf("flat diffs: negative extra %d", extra)
	}
	total := 0
	for _, id := range n.table.Learnable {
		total += n.params[id].Count()
	}
	buf := make([]T, total+extra)
	o := 0
	for _, id := range n.table.Learnable {
		p := n.params[id]
		if err := p.UseDiff(buf[o : o+p.Count() : o+p.Count()]); err != nil {
			return nil, fmt.Errorf("flat diffs: param %d: %w", id, err)
		}
		o += p.Count()
	}
	for id, owner := range n.table.Owners {
		if owner < 0 {
			continue
		}
		if err := n.params[id].ShareDiff(n.params[owner]); err != nil {
			return nil, fmt.Errorf("flat diffs: shared param %d: %w", id, err)
		}
	}
	return buf, nil
}
