"""Networks: ResNets for the policy and the HR/LR classifiers, a registry, and the model card."""

from zoomplan.models.registry import create_model, list_models, register_model
from zoomplan.models.resnet import ResNet

__all__ = ["ResNet", "create_model", "list_models", "register_model"]
