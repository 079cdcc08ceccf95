package solver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/modelio"
)

// SnapshotFilename returns Caffe's name for a snapshot file:
// <prefix>_iter_<iter><ext>, ext being ".caffemodel" or ".solverstate".
func SnapshotFilename(prefix string, iter int, ext string) string {
	return prefix + "_iter_" + strconv.Itoa(iter) + ext
}

// Snapshot writes the weights (.caffemodel, with gradients if
// snapshot_diff) and the solver state (.solverstate: iteration, lr step,
// history, and the .caffemodel's path) under snapshot_prefix, and returns
// both paths.
func (s *Solver[T]) Snapshot() (model, state string, err error) {
	prefix := s.param.GetSnapshotPrefix()
	if prefix == "" {
		return "", "", errors.New("snapshot: snapshot_prefix is empty")
	}
	if dir := filepath.Dir(prefix); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", "", fmt.Errorf("snapshot: %w", err)
		}
	}
	model = SnapshotFilename(prefix, s.iter, ".caffemodel")
	state = SnapshotFilename(prefix, s.iter, ".solverstate")
	net := s.train.ToProto(s.param.GetSnapshotDiff())
	if s.opts.nonFinite != NonFiniteWarn {
		// Never replace a good snapshot series with a diverged one.
		if err := modelio.CheckNetFinite(net); err != nil {
			return "", "", fmt.Errorf("snapshot at iteration %d not written: the weights are not finite: %w", s.iter, err)
		}
	}
	// The two files are a pair: both are written to temporary files, then
	// both renamed; a failure leaves neither.
	w, err := proto.Marshal(net)
	if err != nil {
		return "", "", fmt.Errorf("snapshot: encoding %s: %w", model, err)
	}
	st, err := proto.Marshal(s.State(model))
	if err != nil {
		return "", "", fmt.Errorf("snapshot: encoding %s: %w", state, err)
	}
	if err := modelio.WriteFilesAtomic([]modelio.File{{Path: model, Data: w}, {Path: state, Data: st}}, 0o644); err != nil {
		return "", "", fmt.Errorf("snapshot: %w", err)
	}
	s.log.Info().Int("iter", s.iter).Str("model", model).Str("state", state).Msg("snapshot")
	return model, state, nil
}

// State returns the solver state as a .solverstate holds it; learnedNet is
// the path of the matching .caffemodel (may be empty).
func (s *Solver[T]) State(learnedNet string) *caffepb.SolverState {
	st := &caffepb.SolverState{
		Iter:        proto.Int32(int32(s.iter)),
		CurrentStep: proto.Int32(int32(s.currentStep)),
	}
	if learnedNet != "" {
		st.LearnedNet = proto.String(learnedNet)
	}
	np := len(s.params)
	for _, m := range s.histMem {
		m.Host(len(s.histBuf[0])) // on a device net, the history's one download
	}
	for k, h := range s.history {
		b := blob.New[T](s.params[k%np].Shape()...)
		copy(b.Data(), h)
		st.History = append(st.History, modelio.BlobToProto(b, false))
	}
	return st
}

// SetState restores iteration, lr step and history from a solver state
// (the weights are not touched).
func (s *Solver[T]) SetState(st *caffepb.SolverState) error {
	if err := s.checkLoaded("solver state", s.checkStateFinite(st)); err != nil {
		return err
	}
	if err := s.checkHistory(st); err != nil {
		return err
	}
	s.hostHistory()
	for k, bp := range st.GetHistory() {
		h := s.history[k]
		if len(bp.GetData()) == len(h) {
			for i, v := range bp.GetData() {
				h[i] = T(v)
			}
			continue
		}
		for i, v := range bp.GetDoubleData() {
			h[i] = T(v)
		}
	}
	s.iter = int(st.GetIter())
	s.currentStep = int(st.GetCurrentStep())
	return nil
}

// checkHistory reports a state whose history blobs do not fit this solver:
// their number (the method's sets times the learnable params) and each
// blob's value count. It is checked before anything is restored, so a
// state that does not fit leaves the solver as it was.
func (s *Solver[T]) checkHistory(st *caffepb.SolverState) error {
	if len(st.GetHistory()) != len(s.history) {
		return fmt.Errorf("solver state has %d history blobs, the %s solver of this net needs %d",
			len(st.GetHistory()), s.method, len(s.history))
	}
	for k, bp := range st.GetHistory() {
		if n := len(s.history[k]); len(bp.GetData()) != n && len(bp.GetDoubleData()) != n {
			return fmt.Errorf("history blob %d has %d values (shape %v), param %q has %d",
				k, max(len(bp.GetData()), len(bp.GetDoubleData())), modelio.ProtoShape(bp),
				s.train.LearnableParamNames()[k%len(s.params)], n)
		}
	}
	return nil
}

// Restore resumes from a .solverstate file: it loads the weights the state
// names (learned_net; a path not found, relative to the working directory
// or absolute, is looked up by its name beside the state file), then the
// iteration, lr step and history.
func (s *Solver[T]) Restore(statePath string) error {
	st, err := modelio.ReadSolverState(statePath)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	// A state that does not fit is refused before its weights are loaded.
	if err := s.checkHistory(st); err != nil {
		return fmt.Errorf("restore %s: %w", statePath, err)
	}
	if ln := st.GetLearnedNet(); ln != "" {
		// The weights where the state says, else beside the state file (a
		// snapshot directory moved or copied, absolute paths included), as
		// the Spark driver's resume looks for them.
		p := ln
		if _, err := os.Stat(p); err != nil {
			beside := filepath.Join(filepath.Dir(statePath), filepath.Base(ln))
			if _, berr := os.Stat(beside); berr != nil {
				return fmt.Errorf("restore %s: its weights %s are missing (looked at %s and %s)", statePath, ln, ln, beside)
			}
			p = beside
		}
		if err := s.LoadWeights(p); err != nil {
			return fmt.Errorf("restore %s: %w", statePath, err)
		}
	}
	if err := s.SetState(st); err != nil {
		return fmt.Errorf("restore %s: %w", statePath, err)
	}
	s.log.Info().Str("state", statePath).Int("iter", s.iter).Msg("restored")
	return nil
}

// LoadWeights copies weights from a .caffemodel into the train net (layers
// matched by name, as Caffe's CopyTrainedLayersFrom; the test nets share them).
func (s *Solver[T]) LoadWeights(path string) error {
	np, err := modelio.ReadCaffemodel(path)
	if err != nil {
		return err
	}
	if err := s.checkLoaded("weights "+path, modelio.CheckNetFinite(np)); err != nil {
		return err
	}
	if err := s.train.CopyTrainedLayersFrom(np); err != nil {
		return fmt.Errorf("weights %s: %w", path, err)
	}
	return nil
}
