"""PyTorch twins of Keras models, with the same weights, for agreement tests with captum.

torch is imported on use, after TensorFlow (``import torch`` before TensorFlow crashed the process
beside TensorFlow 2.21), and only where a test that needs it runs (this module is collected for
doctests everywhere).
"""

import numpy as np


def torch_mlp(keras_mlp):
    """The twin of ``models.functional_mlp`` (Dense tanh, Dense softmax): ``torch.nn`` layers
    with the Keras kernels transposed, in eval mode."""
    import torch

    kernel_1, bias_1, kernel_2, bias_2 = keras_mlp.get_weights()
    twin = torch.nn.Sequential(
        torch.nn.Linear(*kernel_1.shape),
        torch.nn.Tanh(),
        torch.nn.Linear(*kernel_2.shape),
        torch.nn.Softmax(dim=1),
    )
    with torch.no_grad():
        for layer, kernel, bias in ((0, kernel_1, bias_1), (2, kernel_2, bias_2)):
            twin[layer].weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.T)))
            twin[layer].bias.copy_(torch.from_numpy(bias))
    return twin.eval()
