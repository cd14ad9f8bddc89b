"""The train stage: receiver samples, the three-pass objective, the loop shared with compress, the trainer."""
