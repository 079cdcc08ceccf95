package solver

import (
	"fmt"
	"math"
)

// LRPolicy holds the SolverParameter fields that decide the learning rate.
type LRPolicy struct {
	// Policy is lr_policy: fixed, step, exp, inv, multistep, poly or sigmoid.
	Policy    string
	BaseLR    float64
	Gamma     float64
	Power     float64
	StepSize  int
	StepValue []int
	MaxIter   int
}

// Validate reports a policy Caffe would reject (it CHECK-fails at run time;
// we say so before training starts).
func (p LRPolicy) Validate() error {
	switch p.Policy {
	case "fixed", "exp", "inv", "multistep", "poly":
	case "step", "sigmoid":
		if p.StepSize <= 0 {
			return fmt.Errorf("lr_policy %q needs stepsize > 0, got %d", p.Policy, p.StepSize)
		}
	case "":
		return fmt.Errorf("lr_policy is not set")
	default:
		return fmt.Errorf("unknown lr_policy %q (known: fixed, step, exp, inv, multistep, poly, sigmoid)", p.Policy)
	}
	if p.Gamma < 0 && p.Policy != "fixed" && p.Policy != "poly" {
		return fmt.Errorf("lr_policy %q needs gamma >= 0, got %g", p.Policy, p.Gamma)
	}
	if p.Policy == "poly" && p.MaxIter <= 0 {
		return fmt.Errorf("lr_policy poly needs max_iter > 0")
	}
	for i := 1; i < len(p.StepValue); i++ {
		if p.StepValue[i] <= p.StepValue[i-1] {
			return fmt.Errorf("stepvalue must increase: %v", p.StepValue)
		}
	}
	return nil
}

// Rate returns the learning rate at iteration iter, as Caffe's
// SGDSolver::GetLearningRate computes it. currentStep is the solver's
// current_step (kept in .solverstate); Rate returns its new value: step sets
// it to iter/stepsize, multistep advances it by at most one per call, exactly
// as Caffe does, and the other policies leave it unchanged.
func (p LRPolicy) Rate(iter, currentStep int) (rate float64, step int) {
	it := float64(iter)
	switch p.Policy {
	case "fixed":
		return p.BaseLR, currentStep
	case "step":
		step = iter / p.StepSize
		return p.BaseLR * math.Pow(p.Gamma, float64(step)), step
	case "exp":
		return p.BaseLR * math.Pow(p.Gamma, it), currentStep
	case "inv":
		return p.BaseLR * math.Pow(1+p.Gamma*it, -p.Power), currentStep
	case "multistep":
		step = currentStep
		if step < len(p.StepValue) && iter >= p.StepValue[step] {
			step++
		}
		return p.BaseLR * math.Pow(p.Gamma, float64(step)), step
	case "poly":
		return p.BaseLR * math.Pow(1-it/float64(p.MaxIter), p.Power), currentStep
	case "sigmoid":
		return p.BaseLR / (1 + math.Exp(-p.Gamma*(it-float64(p.StepSize)))), currentStep
	}
	return math.NaN(), currentStep
}
