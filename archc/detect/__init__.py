"""Detection: data, losses, training, validation (COCO mAP) and prediction for YOLO-style specs."""
