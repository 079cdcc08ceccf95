package main

import "errors"

// runServe is replaced by the real command; until then it says so.
func runServe(args []string) error { return errors.New("serve: not implemented yet") }
