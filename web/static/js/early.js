// Runs before the first paint (a classic script in <head>, not a module), so a phone never shows the long
// header and then folds it. A file, not inline: the pages' CSP allows script from 'self' only.
document.documentElement.classList.add("js");
