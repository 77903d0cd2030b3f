"""Knowledge distillation: the Distiller and its loss, the training loop (:mod:`.training`), teachers as a
library (:mod:`.teachers`), the evaluation, and the teacher and distill stages."""
