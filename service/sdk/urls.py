from django.urls import path

from . import demo, views

app_name = "sdk"

urlpatterns = [
    path("sdk/v1/frame.html", views.frame, name="frame"),
    path("sdk/v1/<str:name>", views.sdk_file, name="file"),
    path("demo/", demo.demo_page, name="demo"),
    path("demo/tab", demo.demo_tab, name="demo_tab"),
    path("demo/stats", demo.demo_stats, name="demo_stats"),
    path("demo/publish", demo.demo_publish, name="demo_publish"),
    path("demo/auth", demo.demo_auth, name="demo_auth"),
    path("demo/<str:name>", demo.demo_script, name="demo_script"),
]
