"""Running test callables in real threads at once, as a server calls a shared explainer."""

import threading


def run_together(tasks):
    """Run each callable in its own thread, all released at once; re-raise the first error."""
    barrier = threading.Barrier(len(tasks))
    errors = []

    def run(task):
        try:
            barrier.wait(timeout=30)
            task()
        except BaseException as error:  # collected and re-raised in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(task,)) for task in tasks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a thread did not finish"
    if errors:
        raise errors[0]
