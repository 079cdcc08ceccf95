package blob

import "fmt"

// UseDiff makes storage b's gradient, keeping the current gradient values:
// a net lays its parameters' gradients out in one buffer this way. storage
// must hold exactly Count elements.
func (b *Blob[T]) UseDiff(storage []T) error {
	if len(storage) != b.count {
		return fmt.Errorf("use diff: %d elements for a blob of count %d", len(storage), b.count)
	}
	if b.diff != nil {
		copy(storage, b.diff[:b.count])
	}
	b.diff = storage
	return nil
}
