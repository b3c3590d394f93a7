"""Model manifests, the model registry, and the engines that run models (ONNX and classical)."""
