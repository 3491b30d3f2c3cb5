"""The Python API: train, look at the numbers, reuse the encoder, sample from a VAE.

Run from the repository root: python examples/api.py  (digits; under a minute on 2 cores)
"""

import numpy as np

import autoencoders

# a plain autoencoder; every option of `autoencoders train` is a keyword here
# (overwrite=True: run the script again and the run directory is replaced)
run = autoencoders.train(
    data="digits", layers=[64, 128, 16], epochs=60, out="runs/api-dense", overwrite=True, quiet=True
)
m = run.metrics
print(f"test SSE/image {m['test_sse_per_image']:.2f} (PCA-16: {m['pca_sse_per_image']:.2f})")

# the trained model is an nn.Module; codes and reconstructions come from any data spec or array
model = autoencoders.load(run.dir)
codes = autoencoders.encode(run.dir, "digits", split="test")
inputs, recon, shape = autoencoders.reconstruct(run.dir, "digits", split="test")
print(f"{len(codes)} test codes of size {codes.shape[1]}; image shape {shape}")

# reuse the encoder: a softmax head on it, fine-tuned with 10 % of the labels
clf = autoencoders.classify(run.dir, labels_fraction=0.1, quiet=True)
acc, used = clf.metrics["test_accuracy"], clf.metrics["labelled_examples"]
print(f"classifier: test accuracy {acc:.3f} from {used} labels")

# a VAE: its test NLL (importance-sampled) and new digits from its prior
vae = autoencoders.train(
    data="digits",
    model="vae",
    layers=[64, 128, 8],
    epochs=60,
    iw_samples=100,
    out="runs/api-vae",
    overwrite=True,
    quiet=True,
)
print(f"VAE: test NLL {vae.metrics['test_nll']:.2f} nats (negative ELBO {vae.metrics['test_neg_elbo']:.2f})")
rows, shape = autoencoders.sample(vae.dir, n=16, seed=0)
print(f"16 samples of shape {shape}, pixel mean {np.mean(rows):.3f}")
