package main

import "errors"

// runVersion is replaced by the real command; until then it says so.
func runVersion(args []string) error { return errors.New("version: not implemented yet") }
