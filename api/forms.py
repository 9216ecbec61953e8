from __future__ import annotations

from django import forms

from videos.forms import PlainText


class ApiKeyForm(forms.Form):
    name = PlainText(
        max_length=100, help_text="What the key is for, e.g. the script or pipeline that uses it."
    )
    access = forms.ChoiceField(
        choices=[
            ("read_only", "Read-only: list and read tasks"),
            ("read_write", "Read-write: also track, stop tracking and start videos"),
        ],
        initial="read_only",
        widget=forms.RadioSelect,
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the key a name.")
        return name
