"""Data sets as uint8 tensors in memory (CIFAR, MNIST, synthetic) and the on-device batch pipeline."""
