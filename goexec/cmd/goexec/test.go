package main

import "errors"

// runTest is replaced by the real command; until then it says so.
func runTest(args []string) error { return errors.New("test: not implemented yet") }
