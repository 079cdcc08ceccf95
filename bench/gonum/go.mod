module github.com/gocaffe/gocaffe/bench/gonum

go 1.26

require (
	github.com/gocaffe/gocaffe v0.0.0
	gonum.org/v1/gonum v0.17.0
)

replace github.com/gocaffe/gocaffe => ../..
