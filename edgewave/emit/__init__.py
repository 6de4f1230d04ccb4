"""C emission: a converted program -> interpreter-free streaming C (and TFLM glue), via Jinja2 templates."""
