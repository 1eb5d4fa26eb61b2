/**
 * Free text (an error message, a problem) with the credentials of every URL in it masked: a
 * "scheme://user:password@" becomes "scheme://user:***@". For text that may quote a URL the
 * program did not parse itself (a YAML line, a file path that is really a URL).
 */
export function redactText(text: string): string {
  // Anchored on "://" (linear in the text's length, whatever it holds).
  return text.replace(/:\/\/([^\s/@:"'`]*):[^\s@"'`/]*@/g, "://$1:***@");
}
