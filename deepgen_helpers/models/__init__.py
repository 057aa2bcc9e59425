"""Code that lessons teach and later code reuses, generated from the lessons' cells tagged ``export``.

Never edit these modules by hand: edit the notebook, then run ``python -m deepgen_helpers.publish sync``
(``publish.EXPORTS`` maps notebooks to modules; the test suite fails while a module differs from its notebook).

* ``basics``: lesson 01 (Gaussian mixture, independent Bernoulli pixels).
* ``autoencoders``: lesson 02 (MLP and convolutional autoencoders, reconstruction loss, training loop).
* ``vae``: lesson 03 (VAE, conditional VAE, ELBO terms, IWAE, training loop).
"""
