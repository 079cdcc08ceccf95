package blob

import "fmt"

// UseDiff makes storage b's gradient on the host, keeping the current
// gradient values (brought to the host first): a net lays its parameters'
// gradients out in one buffer this way. Blobs sharing b's gradient
// (ShareDiff) follow it. storage must hold exactly Count elements.
func (b *Blob[T]) UseDiff(storage []T) error {
	if len(storage) != b.count {
		return fmt.Errorf("use diff: %d elements for a blob of count %d", len(storage), b.count)
	}
	b.diffMem().UseHost(storage)
	return nil
}
