package main

import "errors"

// runTime is replaced by the real command; until then it says so.
func runTime(args []string) error { return errors.New("time: not implemented yet") }
