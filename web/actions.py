"""Vietnamese names of audit actions, for people reading the log or their own history."""

from __future__ import annotations

LABELS = {
    "login": "Đăng nhập",
    "login.failed": "Đăng nhập không thành công",
    "logout": "Đăng xuất",
    "user.create": "Tạo tài khoản",
    "user.password": "Đổi mật khẩu",
    "token.create": "Tạo mã truy cập API",
    "file.upload": "Tải tệp lên",
    "document.register": "Vào sổ văn bản đến",
    "document.attach": "Đính kèm tệp vào văn bản",
    "document.submit": "Trình văn bản",
    "document.direct": "Cho ý kiến chỉ đạo",
    "document.issue": "Ban hành văn bản đi",
    "document.receive": "Nhận văn bản nội bộ",
    "draft.create": "Tạo dự thảo",
    "draft.version": "Cập nhật dự thảo",
    "draft.send": "Trình duyệt dự thảo",
    "draft.approve": "Duyệt dự thảo",
    "draft.return": "Trả lại dự thảo",
    "dossier.open": "Mở hồ sơ công việc",
    "dossier.file": "Đưa vào hồ sơ",
    "dossier.close": "Đóng hồ sơ",
    "task.pass_down": "Giao tiếp công việc",
    "task.return": "Trả lại công việc",
    "task.extension_request": "Xin gia hạn",
    "task.complete": "Hoàn thành công việc",
    "meeting.create": "Tạo cuộc họp",
    "meeting.invite": "Gửi giấy mời họp",
    "meeting.respond": "Trả lời giấy mời họp",
    "meeting.minutes.approve": "Duyệt biên bản họp",
    "poll.create": "Tạo biểu quyết",
    "poll.open": "Mở biểu quyết",
    "poll.close": "Kết thúc biểu quyết",
    "poll.publish": "Công bố kết quả biểu quyết",
}

AREAS = {
    "meeting": "Cuộc họp",
    "poll": "Biểu quyết",
    "document": "Văn bản",
    "draft": "Dự thảo",
    "task": "Công việc",
    "dossier": "Hồ sơ",
    "user": "Tài khoản",
}


def action_label(action: str) -> str:
    """The Vietnamese name, or the area's name with the code when the action is not listed."""
    if action in LABELS:
        return LABELS[action]
    area = AREAS.get(action.split(".", 1)[0])
    return f"{area}: {action.split('.', 1)[1]}" if area and "." in action else action
