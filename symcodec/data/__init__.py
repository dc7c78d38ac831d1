"""Datasets: sources (folders, tars, WebDataset, MNIST idx), tar io, the convert engine and its journal, torch datasets."""
