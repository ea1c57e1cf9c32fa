from django.apps import AppConfig


class LabConfig(AppConfig):
    name = "lab"
    verbose_name = "State Lab (the live page)"
