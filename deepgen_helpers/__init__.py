"""DeepGen helpers: the plumbing of the course, and the blocks earlier lessons built.

Modules, one concern each:

* ``config``: run mode, device, seeds, environment report (``setup``).
* ``data``: bundled datasets (MNIST, Fashion-MNIST, text corpora) with checksums, 2-D toy
  distributions.
* ``plotting``: image grids, loss curves, 2-D scatter and density plots.
* ``training``: progress bars, loss history with a live plot, ``load_or_train``.
* ``checkpoints``: safe, atomic save and load of state dict + config; the shipped-checkpoint
  manifest.
* ``classifier``: the course classifier behind FID and class accuracy.
* ``metrics``: bits per dimension, FID, class accuracy, class-histogram entropy, BLEU and chrF.
* ``checks``: exercise checkers.
* ``bench``: executes lessons and prints their speed and quality figures.
* ``publish``: exports lesson code to ``models``, Colab badges, stored notebook outputs.
* ``models``: code the lessons teach and later code reuses, generated from the lessons' cells
  tagged ``export`` (``basics`` from lesson 01, ``autoencoders`` from 02, ``vae`` from 03); never
  edited by hand.
"""
__version__ = "0.1.0"
