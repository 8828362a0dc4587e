from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from service.realtime.tenancy import forget_apps

from .models import App


@receiver(post_save, sender=App)
@receiver(post_delete, sender=App)
def app_changed(sender, **kwargs):
    """Apply app settings at once in this process (others pick them up within seconds)."""
    forget_apps()
