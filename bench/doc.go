// Package bench holds whole-net CPU benchmarks of GoCaffe's layers (LeNet
// and CIFAR-10 quick forward and backward, per layer and in total) and the
// scripts that run them beside the PyTorch CPU anchor. See BENCHMARKS.md.
package bench
