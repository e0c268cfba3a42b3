"""The container init: the intermediate process and PID 1, from fork to execve."""
