"""Training: the one loop, the steps it calls, resumable state, greedy layer-wise pretraining."""
