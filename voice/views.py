"""Dashboard endpoints of the voice runtime (mounted at the site root by voiceapp/urls.py)."""

from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.views import View

from agents import selectors
from core.errors import ApplicationError
from tenants.web import TenantPageMixin
from voice.preview import voice_preview_wav


class VoicePreviewView(TenantPageMixin, View):
    """GET: a short WAV of the voice, from the engine a call would use (cached per voice)."""

    def get(self, request, voice_id):
        voice = get_object_or_404(selectors.voice_list(tenant=self.tenant), pk=voice_id)
        try:
            audio = voice_preview_wav(tenant=self.tenant, voice=voice)
        except ApplicationError as exc:
            error = {"type": exc.type, "code": exc.code, "message": exc.message}
            return JsonResponse({"error": error}, status=exc.status_code)
        response = HttpResponse(audio, content_type="audio/wav")
        response["Cache-Control"] = "private, max-age=3600"
        response["Content-Disposition"] = f'inline; filename="voice-{voice.pk}.wav"'
        return response
