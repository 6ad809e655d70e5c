@fl
Feature: Follicular lymphoma after CD19 CAR-T failure
  Follicular lymphoma that relapses after axi-cel, tisa-cel or liso-cel is usually indolent; the evidence
  after CAR-T is thin, so trials come first when one can be reached, and the standard options are
  weighed rather than prescribed.

  Rule: A CD20xCD3 bispecific antibody is an option while CD20 is expressed

    @bispecific_antibody @long_term_follow_up
    Scenario: Relapse two years after axi-cel with CD20 retained
      Given a 62-year-old with follicular lymphoma who relapsed 24 months after axi-cel
      And CD20 is positive on the failure biopsy
      When postcart assesses the situation
      Then a bispecific antibody is to be considered
      And the rationale cites Cartron 2025
      And long-term follow-up is recommended
      And the rationale cites Rejeski 2023

    @bispecific_antibody
    Scenario: CD20-negative relapse
      Given a 57-year-old with follicular lymphoma who relapsed 15 months after tisa-cel
      And CD20 is negative on re-biopsy
      When postcart assesses the situation
      Then a bispecific antibody is not advised

    @bispecific_antibody
    Scenario: Relapse after mosunetuzumab had already been given
      Given a 66-year-old with follicular lymphoma who relapsed 18 months after liso-cel
      And she has already received mosunetuzumab
      When postcart assesses the situation
      Then a bispecific antibody is to be considered

  Rule: With thin evidence after CAR-T, a reachable trial is the first choice

    @clinical_trial
    Scenario: A trial is available
      Given a 60-year-old with follicular lymphoma who relapsed 12 months after axi-cel
      And a suitable clinical trial is available
      When postcart assesses the situation
      Then a clinical trial is recommended

  Rule: Local and transplant options keep their place

    @radiotherapy
    Scenario: A single symptomatic nodal site
      Given a 68-year-old with follicular lymphoma who relapsed 30 months after axi-cel
      And the relapse is localized to a single site
      When postcart assesses the situation
      Then radiotherapy is to be considered
      And the rationale cites Saifi 2023

    @allogeneic_hct
    Scenario: A young fit patient with a sibling donor
      Given a 46-year-old with follicular lymphoma who relapsed 9 months after tisa-cel
      And the HCT-CI is 0
      And organ function is adequate for intensive therapy
      And a matched sibling donor is available
      When postcart assesses the situation
      Then allogeneic transplant is to be considered

  Rule: Chemotherapy-free systemic options are weighed, and a biopsy excludes transformation

    @other_systemic_therapy
    Scenario: CD19 and CD20 retained, lenalidomide not given before
      Given a 66-year-old with follicular lymphoma who relapsed 20 months after tisa-cel
      And CD19 is retained on re-biopsy
      And CD20 is positive on the failure biopsy
      When postcart assesses the situation
      Then other systemic therapy is to be considered
      And the rationale cites Leonard 2019
      And the rationale cites inMIND (FDA 2025)
      And postcart asks for a biopsy to exclude transformation

    @other_systemic_therapy
    Scenario: Histology confirmed as follicular lymphoma grade 1-2
      Given a 59-year-old with follicular lymphoma who relapsed 16 months after liso-cel
      And the histology is follicular lymphoma grade 1-2
      When postcart assesses the situation
      Then other systemic therapy is to be considered
      And postcart does not ask for the histology

  Rule: With quality of life first, the bispecific is discussed rather than recommended

    @bispecific_antibody @quality_of_life_focus
    Scenario: Relapse after axi-cel in a patient who puts quality of life first
      Given a 77-year-old with follicular lymphoma who relapsed 18 months after axi-cel
      And CD20 is positive on the failure biopsy
      And the patient's priority is quality of life
      When postcart assesses the situation
      Then a bispecific antibody is to be considered
      And the rationale mentions "rather than"
      And care focused on quality of life is recommended
