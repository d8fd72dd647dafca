"""The ``mlp`` family: the plain multilayer-perceptron baseline on the same preprocessing."""
