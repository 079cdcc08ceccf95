package main

import "errors"

// runTrain is replaced by the real command; until then it says so.
func runTrain(args []string) error { return errors.New("train: not implemented yet") }
