"""A real MLflow pyfunc model (logged from code) whose predict takes half a second: for the
queue-full and timeout tests, where a fast model would make the outcome a race."""

import time

import mlflow.pyfunc
from mlflow.models import set_model


class SlowModel(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        time.sleep(0.5)
        return model_input["f0"].to_numpy() * 2


set_model(SlowModel())
