module github.com/gocaffe/gocaffe

go 1.26
