from django.urls import path

from profiles.views import ProfileDetailView, ProfileMeView

urlpatterns = [
    path("me/", ProfileMeView.as_view(), name="profile-me"),
    path("<int:user_id>/", ProfileDetailView.as_view(), name="profile-detail"),
]
