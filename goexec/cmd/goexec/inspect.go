package main

import "errors"

// runInspect is replaced by the real command; until then it says so.
func runInspect(args []string) error { return errors.New("inspect: not implemented yet") }
