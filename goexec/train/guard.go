package train

import (
	"fmt"

	"github.com/rs/zerolog"
	"google.golang.org/grpc/codes"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/modelio"
	"github.com/gocaffe/gocaffe/caffe/solver"
	"github.com/gocaffe/gocaffe/goexec/memcheck"
	pb "github.com/gocaffe/gocaffe/goexec/rpc/goexecpb"
)

// WithNonFinite sets what a round does when the loss or the reduced
// gradient is NaN or infinite: stop with code DIVERGED (the default), or
// log a warning and train on (spark.gocaffe.nonFinite=warn).
func WithNonFinite(m solver.NonFinite) Option { return func(s *Service) { s.nonFinite = m } }

// diverged is a DIVERGED error: the loss or the reduced gradient went NaN
// or infinite (every rank holds the same reduced values, so every rank
// stops at the same iteration with the same message). gRPC InvalidArgument:
// a retry from the same weights diverges again.
func diverged(where string, d *solver.DivergedError) error {
	subject := d.Layer
	if subject == "" {
		subject = d.Param
	}
	return codedError(pb.ErrorCode_DIVERGED, codes.InvalidArgument, subject, d.Iter, fmt.Sprintf("%s: %v", where, d))
}

// checkWeightsFinite refuses weights sent for a round that hold NaN or Inf
// (naming the blob), unless the policy is warn.
func (s *Service) checkWeightsFinite(w *caffepb.NetParameter, log zerolog.Logger) error {
	err := modelio.CheckNetFinite(w)
	if err == nil {
		return nil
	}
	if s.nonFinite == solver.NonFiniteWarn {
		log.Warn().Err(err).Msg("weights hold non-finite values (spark.gocaffe.nonFinite=warn)")
		return nil
	}
	return codedError(pb.ErrorCode_DIVERGED, codes.InvalidArgument, "weights", noIter, fmt.Sprintf("weights: %v", err))
}

// WithMemorySources sets where the service reads the memory it may use
// (memcheck.System by default; tests give fixed limits).
func WithMemorySources(m memcheck.Sources) Option { return func(s *Service) { s.memSources = &m } }

// checkMemory refuses a net whose estimated need exceeds what this goexec
// may use, with code OUT_OF_MEMORY, before anything is allocated.
func (s *Service) checkMemory(sp *caffepb.SolverParameter) error {
	need, err := solver.EstimateMemory(sp, s.reg, true)
	if err != nil {
		return nil // the solver's own construction reports a bad net
	}
	src := memcheck.System()
	if s.memSources != nil {
		src = *s.memSources
	}
	err = memcheck.Check("the train net", need.Bytes, need.ParamBytes, need.Batch, need.Largest, src.Budget())
	if err == nil {
		return nil
	}
	subject := ""
	if len(need.Largest) > 0 {
		subject = need.Largest[0].Name
	}
	return codedError(pb.ErrorCode_OUT_OF_MEMORY, codes.ResourceExhausted, subject, noIter, err.Error())
}
