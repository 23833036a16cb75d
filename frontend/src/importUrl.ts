// The import endpoint's URL: the file's name travels as ?filename= so the server can name a
// document that has no "name" of its own after the file (bug: it became "Untitled").
export function importUrl(fileName?: string): string {
  const base = "/api/projects/import";
  return fileName ? `${base}?filename=${encodeURIComponent(fileName)}` : base;
}
