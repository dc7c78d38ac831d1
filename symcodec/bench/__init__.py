"""The research harness: rate against accuracy beside JPEG and WebP (`symcodec eval`), accuracy at a rate, plots."""
