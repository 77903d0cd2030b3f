"""Knowledge distillation: the Distiller, its loss, the teacher and distill stages."""
