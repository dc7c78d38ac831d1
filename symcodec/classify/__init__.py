"""Classifiers that read decoded images: architectures (seed ResNet-20 and LeNet, airbench nets), weights, prediction (torch)."""
