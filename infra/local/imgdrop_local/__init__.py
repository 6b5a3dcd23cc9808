"""imgdrop's local stack: AWS emulated by moto, API Gateway and Lambda emulated in-process,
all wired from template.yaml. Development and tests only; never packaged into a Lambda."""
