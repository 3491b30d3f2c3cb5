"""What a trained model is worth: metrics, probes and likelihoods, on the model's device."""
