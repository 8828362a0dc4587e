from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

app_name = "tenants"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(template_name="tenants/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("dashboard/", views.app_list, name="app_list"),
]
