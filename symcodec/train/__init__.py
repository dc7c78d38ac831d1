"""Training: k-means codebooks (faiss, the [train] extra) and entropy model 3 tables."""
