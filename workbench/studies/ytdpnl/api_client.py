"""placeholder"""
class ApiClient: pass
