package network

import "fmt"

// FlatDiffs lays the learnable parameters' gradients out anew in one
// contiguous buffer, in LearnableParams order (ParamSegments), followed by
// extra spare elements, and returns the whole buffer: an all-reduce (or an
// update) then works on it in place instead of copying every gradient in
// and out. The gradients' values are kept; params that share an owner's
// storage follow it; GradBuffer returns the new buffer's first part.
func (n *Net[T]) FlatDiffs(extra int) ([]T, error) {
	if extra < 0 {
		return nil, fmt.Errorf("flat diffs: negative extra %d", extra)
	}
	total := len(n.gradBuf)
	buf := make([]T, total+extra)
	for li, id := range n.table.Learnable {
		sg := n.segs[li]
		if err := n.params[id].UseDiff(buf[sg.Offset : sg.Offset+sg.Count : sg.Offset+sg.Count]); err != nil {
			return nil, fmt.Errorf("flat diffs: param %d: %w", id, err)
		}
	}
	n.gradBuf = buf[:total:total]
	return buf, nil
}
