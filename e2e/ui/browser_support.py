"""Screenshots for the browser suite."""
import os

SCREENSHOTS = os.path.join(os.path.dirname(__file__), "..", "..", "target", "ui-screenshots")


def screenshot(driver, name):
    """Saves the whole page (the window grown to the page's height) under target/ui-screenshots."""
    os.makedirs(SCREENSHOTS, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, max(900, min(int(height) + 40, 4000)))
    path = os.path.join(SCREENSHOTS, f"{name}.png")
    driver.save_screenshot(path)
    driver.set_window_size(1400, 1000)
    return path
