from django.urls import path

from bench.bare.views import SubmitView

urlpatterns = [path("jobs", SubmitView.as_view())]
