"""Classifiers from an autoencoder's encoder with few labels."""
